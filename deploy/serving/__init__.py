"""Image search over HTTP: a FastAPI service and a web page over an exported HashNet model.

Start it with `python -m deploy.serving --model-dir DIR --data-path DIR` (see README.md here).
"""
