"""Training: the one runner, its callbacks, the CIFAR and ImageNet tasks, schedules, device choices."""
