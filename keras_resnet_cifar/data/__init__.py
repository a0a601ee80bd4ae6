"""Inputs: CIFAR and ImageNet sources, the validation split, augmentation, tf.data pipelines, arrays."""
