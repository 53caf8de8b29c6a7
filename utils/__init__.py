"""HashNet-Paddle library: one sub-package per concern (docs/architecture.md). Importing it changes
nothing in the process; entry points call utils.runtime.configure() first."""
