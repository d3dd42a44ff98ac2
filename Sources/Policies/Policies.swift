import Embeddings
