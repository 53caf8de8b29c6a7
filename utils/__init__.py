import os
import warnings

# paddle warns on every import when ccache is absent (it only matters for C++ extensions).
warnings.filterwarnings("ignore", message="No ccache found")
# BatchNorm always tracks running statistics in training; paddle says so on every step.
warnings.filterwarnings("ignore", message="When training, we now always track global mean and variance")
os.environ.setdefault("GLOG_minloglevel", "2")  # paddle's C++ INFO/WARNING lines are noise for users
