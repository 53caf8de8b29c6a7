"""Codes outside training: encoders (trained weights in dygraph, or an exported model through Paddle
Inference, behind one Encoder protocol), the export itself, the database code cache, the exported
model's files, and backbone features for the baselines."""
from utils.inference.encoders import DygraphEncoder, encode_list, Encoder, InferenceEncoder

__all__ = ["DygraphEncoder", "Encoder", "InferenceEncoder", "encode_list"]
