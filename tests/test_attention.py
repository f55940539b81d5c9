import torch
from transformers import BertConfig, BertModel

from companion import attention, resources


def test_weights_are_one_distribution_per_query_for_a_sentence_and_a_pair(provisioned):
    tok = resources.tokenizer("all-MiniLM-L6-v2")
    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                 intermediate_size=64))
    pieces, weights = attention.weights(model, tok, "The jury met.")
    assert pieces[0] == "[CLS]" and pieces[-1] == "[SEP]"
    assert weights.shape == (2, 4, len(pieces), len(pieces)) and weights.dtype == torch.float32
    assert torch.allclose(weights.sum(-1), torch.ones(2, 4, len(pieces)), atol=1e-5)
    pair_pieces, _ = attention.weights(model, tok, ("The jury met.", "It praised the city."))
    assert pair_pieces.count("[SEP]") == 2 and len(pair_pieces) > len(pieces)
