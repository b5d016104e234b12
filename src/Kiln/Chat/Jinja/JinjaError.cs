namespace Kiln.Chat.Jinja;

/// <summary>
/// A template that does not parse or render. <see cref="Offset"/> is where in the template, when known: the
/// parts that never see the template (filters, methods, operators) throw without one, and the evaluator
/// adds the position of the expression it was evaluating.
/// </summary>
internal sealed class JinjaError(string message, int? offset = null) : Exception(message)
{
    public int? Offset { get; } = offset;

    public JinjaError At(int offset) => Offset is null ? new JinjaError(Message, offset) : this;
}

/// <summary>The template called raise_exception(message): transformers reports the message as it is.</summary>
internal sealed class TemplateRaisedError(string message) : Exception(message);
