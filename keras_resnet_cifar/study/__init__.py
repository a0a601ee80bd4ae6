"""Studies of the networks: describe, diagrams, plain vs residual, layer responses, zoo, benchmark."""
