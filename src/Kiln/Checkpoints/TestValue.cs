using System.Text.Json.Nodes;

namespace Kiln.Checkpoints;

/// <summary>
/// What <c>kiln testmodel</c> writes into one config.json field, as a family's description declares it
/// beside the read of the field: a value taken from the options (<see cref="TestOption"/>), whose errors
/// then name the option, or a fixed one (<see cref="Fixed"/>).
/// </summary>
public sealed record TestValue(Func<TestModelOptions, JsonNode?> Value)
{
    /// <summary>The option the value comes from, as errors about the field name it; null for a fixed value.</summary>
    public Func<TestModelOptions, string>? Option { get; init; }

    /// <summary>False when the field is left out (the reader's default applies).</summary>
    public Func<TestModelOptions, bool> IsWritten { get; init; } = _ => true;

    /// <summary>
    /// True when the options ask for something with this value: a model type whose description never
    /// writes it cannot honour the request, and the writer refuses it.
    /// </summary>
    public Func<TestModelOptions, bool> IsSet { get; init; } = _ => true;

    /// <summary>The same value for every test checkpoint.</summary>
    public static TestValue Fixed(JsonNode? value) => new(_ => value?.DeepClone());
}
