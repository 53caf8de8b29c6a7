import os
import tempfile

from hypothesis.configuration import set_hypothesis_home_dir

# hypothesis caches constants and examples in ./.hypothesis by default; keep the work tree clean
set_hypothesis_home_dir(os.path.join(tempfile.gettempdir(), f"hashnet-hypothesis-{os.getuid()}"))
