namespace Kiln;

/// <summary>
/// An error the user can cause and fix: a bad path, a malformed file, an unsupported model.
/// The CLI prints <see cref="Exception.Message"/> as one line and exits with code 2.
/// </summary>
public sealed class KilnException : Exception
{
    public KilnException(string message, Exception? inner = null) : base(message, inner) { }

    /// <summary>An error about one field of one file: "FILE: FIELD: problem".</summary>
    public static KilnException InFile(string file, string field, string problem, Exception? inner = null) =>
        new($"{file}: {field}: {problem}", inner);

    /// <summary>
    /// <paramref name="message"/> on one line, for a message that quotes input holding a line break (a template's
    /// text, a transform name, an id): line breaks and other control characters written as escapes.
    /// </summary>
    public static string OneLine(string message) =>
        string.Concat(message.Select(c => c switch { '\n' => "\\n", '\r' => "\\r", _ when char.IsControl(c) => $"\\u{(int)c:x4}", _ => c.ToString() }));
}
