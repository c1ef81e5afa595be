"""kumactl's commands, one module per top-level command."""
