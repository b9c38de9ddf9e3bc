"""Retrieval: Hamming metrics, score ranking, binary codes and code files, the Hamming index."""
