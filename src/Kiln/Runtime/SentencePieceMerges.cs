namespace Kiln.Runtime;

/// <summary>
/// The BPE merges of a SentencePiece vocabulary that lists no merges, made as transformers' SentencePiece
/// converter makes them for tokenizer.json: for each token in id order, every split into two tokens of the
/// vocabulary (ordered by the two ids), then all of them ordered by the whole token's score, highest first,
/// then by the length of the left part and of the right part (in characters), longest first, the order
/// otherwise kept. A merge's rank then follows SentencePiece's preference for high-scoring pieces. Without
/// scores, the converter ranks by the token's id instead, lowest first, then the shorter parts first.
/// </summary>
internal static class SentencePieceMerges
{
    public static List<(string Left, string Right)> From(string[] tokens, IReadOnlyDictionary<string, int> ids, double[]? scores)
    {
        var merges = new List<(string Left, string Right, double Score, int LeftLength, int RightLength)>();
        var local = new List<(string Left, string Right, int LeftId, int RightId, int LeftLength)>();
        for (var i = 0; i < tokens.Length; i++)
        {
            var token = tokens[i];
            local.Clear();
            // Split between characters (code points, as Python counts them), never inside a surrogate pair.
            var characters = 0;
            for (var at = 0; at < token.Length;)
            {
                at += char.IsSurrogatePair(token, at) ? 2 : 1;
                characters++;
                if (at == token.Length) break;
                var (left, right) = (token[..at], token[at..]);
                if (ids.TryGetValue(left, out var leftId) && ids.TryGetValue(right, out var rightId))
                    local.Add((left, right, leftId, rightId, characters));
            }
            var total = CodePoints(token);
            merges.AddRange(local.OrderBy(m => m.LeftId).ThenBy(m => m.RightId)
                .Select(m => (m.Left, m.Right, scores?[i] ?? i, m.LeftLength, total - m.LeftLength)));
        }
        // LINQ's sorts are stable, as Python's is (also when reversed).
        var ranked = scores is null
            ? merges.OrderBy(m => m.Score).ThenBy(m => m.LeftLength).ThenBy(m => m.RightLength)
            : merges.OrderByDescending(m => m.Score).ThenByDescending(m => m.LeftLength).ThenByDescending(m => m.RightLength);
        return [.. ranked.Select(m => (m.Left, m.Right))];
    }

    private static int CodePoints(string text)
    {
        var count = 0;
        for (var at = 0; at < text.Length; at += char.IsSurrogatePair(text, at) ? 2 : 1) count++;
        return count;
    }
}
