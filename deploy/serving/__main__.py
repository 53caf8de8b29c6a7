"""`python -m deploy.serving ...`: see deploy/serving/README.md or `--help`."""
from deploy.serving.cli import main

if __name__ == "__main__":
    main()
