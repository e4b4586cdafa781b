"""Factorisation (MF, BPR, NeuMF) and sequential (SASRec, BERT4Rec) recommenders, and non-learned baselines.

Modules are imported by the dotted paths the plugin's hooks return (``plugin.py``), never here, so
listing the registry imports nothing heavy.
"""
