using Kiln.Runtime;

namespace Kiln.Cache;

/// <summary>tokenizer-facts.json of a tokenizer folder (<see cref="TokenizerTier"/>): the facts, and the size and XXH3-128 of the saved tokenizer.json.</summary>
public sealed record TokenizerFolderFacts(int SchemaVersion, TokenizerFacts Tokenizer, long CoreBytes, string CoreXxh3);
