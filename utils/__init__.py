import os
import warnings

# paddle warns on every import when ccache is absent (it only matters for C++ extensions).
warnings.filterwarnings("ignore", message="No ccache found")
os.environ.setdefault("GLOG_minloglevel", "2")  # paddle's C++ INFO/WARNING lines are noise for users
