"""The command-line tools (krc-train, krc-evaluate, ...): flags in, one runner call out."""
