using System.CommandLine;

namespace Kiln.Cli;

/// <summary>Options shared by several commands.</summary>
public static class CommonOptions
{
    /// <summary>The embedded default model, copied beside the kiln binary at build time.</summary>
    public static string DefaultModelPath => Path.Combine(AppContext.BaseDirectory, "models", "stories260K");

    public static Option<bool> Verbose { get; } = new("--verbose", "-v")
    {
        Description = "Show stack traces on errors.",
        Recursive = true,
    };

    public static Option<string> Model(bool required) => new("--model", "-m")
    {
        Description = required
            ? "Hugging Face checkpoint folder (config.json, *.safetensors, tokenizer.json), or a GGUF file (or a folder holding one)."
            : "Hugging Face checkpoint folder (config.json, *.safetensors, tokenizer.json), or a GGUF file (or a folder holding one); default: the embedded stories260K.",
        Required = required,
        DefaultValueFactory = required ? null! : _ => DefaultModelPath,
    };

    public static Option<bool> Json(string what) => new("--json") { Description = $"Print {what} as one JSON object." };

    /// <summary>
    /// The most --threads accepted: far more than any machine Kiln runs on has cores, and far fewer
    /// than the tens of thousands that make ONNX Runtime's thread pool take minutes to start.
    /// </summary>
    public const int MaxThreads = 1024;

    public static Option<int?> Threads { get; } = CreateThreads();

    private static Option<int?> CreateThreads()
    {
        var threads = new Option<int?>("--threads") { Description = "ONNX Runtime intra-op threads (default: the number of physical cores)." };
        threads.Validators.Add(result =>
        {
            // Read from the token: asking the result for a value that does not parse would throw, and the
            // parser reports that one itself.
            if (result.Tokens.Count > 0 && int.TryParse(result.Tokens[^1].Value, out var n) && n is < 1 or > MaxThreads)
                result.AddError($"--threads: must be between 1 and {MaxThreads}, got {n}");
        });
        return threads;
    }

    public static Option<int?> Context { get; } = new("--context")
    {
        Description = "Positions the run may use, prompt and new tokens (default: the model's max_position_embeddings, " +
            $"at most {Kiln.Compile.SessionSettings.DefaultContextCap}).",
    };

    /// <summary>Says on stderr when the default cap, not the model, set the run's context.</summary>
    public static void NoteContext(int? asked, int context, int maxPositions)
    {
        if (asked is null && context < maxPositions)
            Console.Error.WriteLine($"kiln: note: context capped at {context} of max_position_embeddings {maxPositions}; pass --context N for more");
    }

    public static Option<string?> Pipeline { get; } = new("--pipeline")
    {
        Description = "Pipeline file (YAML, the format of the embedded default) to use instead of the default pipeline.",
    };

    public static Option<string[]> Set { get; } = new("--set")
    {
        Description = "Override a transform setting: NAME.KEY=VALUE (repeatable), e.g. fuse_attention.enabled=false.",
        DefaultValueFactory = _ => [],
    };

    public static Option<string?> Quantize { get; } = CreateQuantize();

    private static Option<string?> CreateQuantize()
    {
        var quantize = new Option<string?>("--quantize") { Description = "Weight-only quantization of the linear layers: none, int8 or int4 (or int4_sym; sets quantize_weights.scheme)." };
        quantize.AcceptOnlyFromAmong(["none", .. Enum.GetValues<Kiln.Weights.QuantScheme>().Select(Kiln.Weights.QuantSchemes.Name)]);
        return quantize;
    }

    /// <summary>The --set overrides, with --quantize as quantize_weights.scheme after them (so it wins).</summary>
    public static string[] Sets(ParseResult result) =>
        result.GetValue(Quantize) is { } scheme ? [.. result.GetValue(Set)!, $"quantize_weights.scheme={scheme}"] : result.GetValue(Set)!;

    /// <summary>Parses "1 2 3" (spaces or commas) into token ids; errors name the option.</summary>
    public static int[] ParseIds(string text, string option)
    {
        // Any whitespace separates ids ("1\n2" from a file is two ids), as does a comma.
        var parts = text.Replace(',', ' ').Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        return parts.Select(p => int.TryParse(p, out var id) && id >= 0
            ? id
            : throw new KilnException($"{option}: '{p}' is not a token id (expected non-negative integers like \"1 2 3\")")).ToArray();
    }
}
