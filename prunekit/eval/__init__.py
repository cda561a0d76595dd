"""Quality metrics on real data: WordNet definition -> noun retrieval (Recall@1) and the
agreement of a pruned encoder's embeddings with the dense one's.

Nothing heavy is imported here; :func:`load_minilm` imports transformers when called.
"""

from prunekit.eval.distill import relational_loss, similarity_matrix
from prunekit.eval.embed import embed_texts, mean_pool
from prunekit.eval.minilm import find_minilm_dir, load_minilm
from prunekit.eval.retrieval import (
    RetrievalResult,
    RetrievalSet,
    mean_cosine,
    recall_at_1,
    wordnet_retrieval,
    wordnet_retrieval_set,
)

__all__ = [
    "RetrievalResult",
    "RetrievalSet",
    "embed_texts",
    "find_minilm_dir",
    "load_minilm",
    "mean_cosine",
    "mean_pool",
    "recall_at_1",
    "relational_loss",
    "similarity_matrix",
    "wordnet_retrieval",
    "wordnet_retrieval_set",
]
