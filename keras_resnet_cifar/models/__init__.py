"""Networks: one block library and builder core, CIFAR and ImageNet tables, presets, pretrained weights."""
