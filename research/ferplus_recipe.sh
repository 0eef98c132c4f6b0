# The training options every FER+ vote-trained candidate shares, sourced by device_train_ferplus.sh (GPU) and
# cpu_train_a75.sh (CPU) so the two cannot drift apart. A run adds its width, input size and epochs, and may
# override any of these by giving it again after them (the last occurrence wins), as --init-model and
# --no-flip-average do.
FERPLUS_RECIPE="--val-split 0.1 --image-size 48 --head-epochs 1 --batch-size 64 --lr 0.001 --fine-tune-lr 0.0005
 --base-weights imagenet --init-model models/emotion.keras --class-weight-power 0.0 --patience 100 --seed 1
 --augment --flip-average --recipe batchemo --votes ../shared/datasets/ferplus/train.csv"
