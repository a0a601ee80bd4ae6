"""The command-line tools (krc-train, krc-evaluate, ...): flags in, package functions called."""
