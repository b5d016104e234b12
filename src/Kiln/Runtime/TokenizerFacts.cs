namespace Kiln.Runtime;

/// <summary>
/// What Kiln applies around Hugging Face's tokenizer library itself: the ids the post-processor adds
/// before and after a text (after tokenizer_config.json's add_bos_token / add_eos_token), the vocabulary
/// size, BOS and EOS, and the added tokens marked special (left out of decoded text).
/// </summary>
public sealed record TokenizerFacts(int[] Prefix, int[] Suffix, int VocabSize, int? BosId, int? EosId, int[] SpecialIds);
