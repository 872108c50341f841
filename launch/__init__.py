"""Cluster launchers for ``dksflax train`` (multi-controller JAX, one program per host).

  python -m launch.tpu_pod --tpu NAME --zone ZONE --num-workers 4 [--dry-run] -- \\
      --config configs/imagenet_resnet.py:vanilla,tat,kfac,50 --workdir gs://BUCKET/r50
  python -m launch.slurm --nodes 2 --gpus-per-node 8 [--per gpu|node] [--dry-run] -- \\
      --config configs/imagenet_resnet.py:vanilla,tat,kfac,50 --workdir /shared/runs/r50
"""
