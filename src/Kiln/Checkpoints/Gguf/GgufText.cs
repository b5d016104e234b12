using System.Text;

namespace Kiln.Checkpoints.Gguf;

/// <summary>
/// Text read from a GGUF file (a key, a tensor name, a value) as an error message shows it: on one line,
/// with control and line-separator characters escaped, and cut after <see cref="MaxLength"/> characters,
/// so that a hostile file cannot make a message span lines or pages.
/// </summary>
internal static class GgufText
{
    public const int MaxLength = 80;

    public static string Show(string text)
    {
        var shown = new StringBuilder();
        foreach (var c in text)
        {
            if (shown.Length >= MaxLength) return shown.Append("...").ToString();
            if (char.IsControl(c) || c is '\u2028' or '\u2029') shown.Append($"\\u{(int)c:x4}");
            else shown.Append(c);
        }
        return shown.ToString();
    }
}
