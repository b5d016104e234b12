using System.CommandLine;
using System.Globalization;
using Kiln.Cache;

namespace Kiln.Cli;

/// <summary>The snapshot-cache options shared by the commands that compile a model.</summary>
public static class CacheOptions
{
    public static Option<string?> Directory { get; } = new("--cache-dir")
    {
        Description = "Cache root (default: $KILN_CACHE_DIR, else $XDG_CACHE_HOME/kiln, else ~/.cache/kiln).",
    };

    public static Option<bool> NoCache { get; } = new("--no-cache") { Description = "Do not use the pipeline snapshot cache." };

    public static Option<string> Mode { get; } = new("--cache-mode")
    {
        Description = "read-write (default), read-only (use entries, never write) or off.",
        DefaultValueFactory = _ => "read-write",
    };

    public static Option<string?> MaxSize { get; } = new("--cache-max-size")
    {
        Description = "Byte budget of the cache; least recently used entries go first (e.g. 500M, 10G; default 10G).",
    };

    public static Option<bool> TrustSharedRoot { get; } = new("--cache-trust-shared-root")
    {
        Description = "Read a cache root that another user owns or that group/others can write.",
    };

    public static Option<string> Fingerprint { get; } = new("--fingerprint")
    {
        Description = "Checkpoint fingerprint in the key: headers (names, dtypes, shapes, file sizes; default) or content (also hashes tensor bytes).",
        DefaultValueFactory = _ => "headers",
    };

    public static Option<bool> Verify { get; } = new("--cache-verify")
    {
        Description = "On a hit, also compile from scratch and compare graph hashes; a mismatch is reported and the entry removed.",
    };

    public static Option<bool> Progress { get; } = new("--cache-progress")
    {
        Description = "Print each step of saving a cache entry (staged, files written, manifest written, published) to stderr.",
    };

    public static IEnumerable<Option> All => [Directory, NoCache, Mode, MaxSize, TrustSharedRoot, Fingerprint, Verify, Progress];

    static CacheOptions()
    {
        Mode.AcceptOnlyFromAmong("read-write", "read-only", "off");
        Fingerprint.AcceptOnlyFromAmong("headers", "content");
    }

    public static void AddTo(Command command)
    {
        foreach (var option in All) command.Options.Add(option);
    }

    public static CacheSettings Settings(ParseResult p)
    {
        var mode = p.GetValue(NoCache) ? CacheMode.Off : p.GetValue(Mode) switch
        {
            "read-only" => CacheMode.ReadOnly,
            "off" => CacheMode.Off,
            _ => CacheMode.ReadWrite,
        };
        return new CacheSettings(
            Root(p),
            mode,
            p.GetValue(MaxSize) is { } size ? ParseSize(size) : CacheSettings.DefaultMaxBytes,
            p.GetValue(TrustSharedRoot),
            p.GetValue(Fingerprint) == "content" ? FingerprintMode.Content : FingerprintMode.Headers,
            p.GetValue(Verify));
    }

    /// <summary>The snapshot cache these options describe, reporting its saves' steps with --cache-progress.</summary>
    public static PipelineCache Cache(ParseResult p) =>
        new(Settings(p), TensorParallel.World, p.GetValue(Progress) ? new SaveProgressLines() : null);

    /// <summary>
    /// The root from --cache-dir, else the environment (<see cref="CacheSettings.ResolveRoot"/>). An empty
    /// --cache-dir is an error rather than the default root: it is a mistake (an unset variable in a
    /// script), not a choice. An empty KILN_CACHE_DIR still means "not set".
    /// </summary>
    public static string Root(ParseResult p) => p.GetValue(Directory) is { Length: 0 }
        ? throw new KilnException("--cache-dir: the cache root is empty (leave the option out for the default root)")
        : CacheSettings.ResolveRoot(p.GetValue(Directory));

    /// <summary>Prints the cache's one-line summary and its warnings to stderr.</summary>
    public static void Report(CacheReport? report)
    {
        if (report is null) return;
        foreach (var warning in report.Warnings) Console.Error.WriteLine($"kiln: warning: {warning}");
        Console.Error.WriteLine($"kiln: {report.Summary}");
    }

    /// <summary>Prints the weights tier's one-line summary and its warnings to stderr.</summary>
    public static void Report(WeightsReport? report)
    {
        if (report is null) return;
        foreach (var warning in report.Warnings) Console.Error.WriteLine($"kiln: warning: {warning}");
        Console.Error.WriteLine($"kiln: {report.Summary}");
    }

    /// <summary>Says why a saved tokenizer could not be used (a hit, a first save and a GGUF model's tokenizer go unsaid).</summary>
    public static void Report(TokenizerReport? report)
    {
        if (report is { Status: "miss", Reason: { } reason } && reason.StartsWith(TokenizerReport.UnusablePrefix, StringComparison.Ordinal))
            Console.Error.WriteLine($"kiln: tokenizer miss ({reason}); prepared it from the model's files");
    }

    /// <summary>"10G", "500M", "64K" or a byte count.</summary>
    public static long ParseSize(string text)
    {
        var units = new Dictionary<char, long> { ['K'] = 1L << 10, ['M'] = 1L << 20, ['G'] = 1L << 30, ['T'] = 1L << 40 };
        var trimmed = text.Trim().TrimEnd('B', 'b');
        var multiplier = trimmed.Length > 0 && units.TryGetValue(char.ToUpperInvariant(trimmed[^1]), out var m) ? m : 1;
        var number = multiplier == 1 ? trimmed : trimmed[..^1];
        return double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && value >= 0
            ? (long)(value * multiplier)
            : throw new KilnException($"--cache-max-size: '{text}' is not a size (e.g. 500M, 10G)");
    }
}
