from companion import resources, tokens


def test_pieces_show_special_tokens_padding_and_mask(provisioned):
    tok = resources.tokenizer("encoder")
    table = tokens.pieces(tok, ["Unwatchable.", "A quietly devastating film."], max_length=16)
    first = table[table.sentence == 0]
    assert first.piece.iloc[0] == "[CLS]" and "[SEP]" in set(first.piece)
    padded = first[first.piece == "[PAD]"]
    assert len(padded) > 0 and (padded.attention_mask == 0).all()
    assert "##" in "".join(table.piece), "a rare word splits into WordPiece pieces"
    assert tokens.grid(table).shape[0] == 2
