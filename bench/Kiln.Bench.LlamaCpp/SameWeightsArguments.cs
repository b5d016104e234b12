using System.Globalization;

namespace Kiln.Bench.LlamaCpp;

/// <summary>One format pair: Kiln's run of a checkpoint folder with extra arguments, llama.cpp's run of a GGUF type.</summary>
/// <param name="Name">f32, f16 (the 16-bit pair: Kiln f16 or bf16 vs llama.cpp F16), int8 (vs Q8_0), int4_sym (vs Q4_0) and int4 (vs Q4_1): each quantized pair the same block layout on both sides.</param>
internal sealed record FormatPair(string Name, string LlamaType, string KilnCheckpoint, string[] KilnArgs);

/// <summary>The options of `same-weights` (see bench/README.md).</summary>
internal sealed record SameWeightsArguments(
    string Model, string? Kiln, string? Work, int[] Threads, string[] Formats, int PromptTokens, int NewTokens, int Repeats,
    int AccuracyTokens, string? Half, Dictionary<string, string[]> KilnArgs, string[] KilnBenchArgs, string LlamaKvType, string LlamaFlashAttn,
    bool LlamaPure, long ProbeBytes, bool Speed, bool Accuracy, int ChildTimeoutS, int Rounds)
{
    public static readonly string[] AllFormats = ["f32", "f16", "int8", "int4", "int4_sym"];

    public const string Usage =
        "usage: same-weights --model DIR [--kiln PATH] [--work DIR] [--threads 1,2] [--formats f32,f16,int8,int4,int4_sym]\n" +
        "         [--prompt-tokens N=128] [--new-tokens N=128] [--repeats R=5] [--rounds N=1] [--accuracy-tokens N=16] [--half f16|bf16]\n" +
        "         [--kiln-args FORMAT=\"ARGS\" ...] [--kiln-bench-args \"ARGS\"] [--llama-kv-type f16|f32]\n" +
        "         [--llama-flash-attn auto|on|off] [--llama-pure]\n" +
        "         [--probe-bytes B] [--no-speed] [--no-accuracy] [--child-timeout-s S=3600]";

    /// <summary>Kiln's extra arguments per format when --kiln-args does not say (wt-quant's flag for the quantized pairs).</summary>
    public static Dictionary<string, string[]> DefaultKilnArgs() => new()
    {
        ["f32"] = [],
        ["f16"] = [],
        ["int8"] = ["--quantize", "int8"],
        // Kiln's int4 blocks are Q4_1's and its int4_sym blocks Q4_0's, byte for byte: the same bits on both sides.
        ["int4"] = ["--quantize", "int4"],
        ["int4_sym"] = ["--quantize", "int4_sym"],
    };

    public static SameWeightsArguments Parse(string[] args)
    {
        string? model = null, kiln = null, work = null, half = null;
        int[] threads = [1, 2];
        var formats = AllFormats;
        int prompt = 128, newTokens = 128, repeats = 5, rounds = 1, accuracy = 16, timeout = 3600;
        var kilnArgs = DefaultKilnArgs();
        string[] benchArgs = [];
        var kv = "f16";
        var flash = "auto";
        var pure = false;
        var probe = global::Kiln.Benchmarks.ReadBandwidthProbe.DefaultBufferBytes;
        bool speed = true, acc = true;
        for (var i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value\n{Usage}");
            int Positive() => int.TryParse(Value(), NumberStyles.None, CultureInfo.InvariantCulture, out var v) && v >= 1 ? v : throw new ArgumentException($"{args[i - 1]}: a positive integer\n{Usage}");
            switch (args[i])
            {
                case "--model": model = Value(); break;
                case "--kiln": kiln = Value(); break;
                case "--work": work = Value(); break;
                case "--threads": threads = Value().Split(',').Select(t => int.Parse(t, CultureInfo.InvariantCulture)).ToArray(); break;
                case "--formats":
                    formats = Value().Split(',', StringSplitOptions.RemoveEmptyEntries);
                    var unknown = formats.FirstOrDefault(f => !AllFormats.Contains(f));
                    if (unknown != null) throw new ArgumentException($"--formats: {unknown} is not one of {string.Join(",", AllFormats)}");
                    break;
                case "--prompt-tokens": prompt = Positive(); break;
                case "--new-tokens": newTokens = Positive(); break;
                case "--repeats": repeats = Positive(); break;
                case "--rounds": rounds = Positive(); break;
                case "--accuracy-tokens": accuracy = Positive(); break;
                case "--child-timeout-s": timeout = Positive(); break;
                case "--half":
                    half = Value();
                    if (half is not ("f16" or "bf16")) throw new ArgumentException("--half: f16 or bf16");
                    break;
                case "--kiln-args":
                    var pair = Value().Split('=', 2);
                    if (pair.Length != 2 || !AllFormats.Contains(pair[0])) throw new ArgumentException($"--kiln-args: FORMAT=\"ARGS\" with FORMAT one of {string.Join(",", AllFormats)}");
                    kilnArgs[pair[0]] = pair[1].Split(' ', StringSplitOptions.RemoveEmptyEntries);
                    break;
                case "--kiln-bench-args": benchArgs = Value().Split(' ', StringSplitOptions.RemoveEmptyEntries); break;
                case "--llama-kv-type":
                    kv = Value();
                    if (kv is not ("f16" or "f32")) throw new ArgumentException("--llama-kv-type: f16 or f32");
                    break;
                case "--llama-flash-attn":
                    flash = Value();
                    if (flash is not ("auto" or "on" or "off")) throw new ArgumentException("--llama-flash-attn: auto, on or off");
                    break;
                case "--llama-pure": pure = true; break;
                case "--probe-bytes": probe = long.Parse(Value(), CultureInfo.InvariantCulture); break;
                case "--no-speed": speed = false; break;
                case "--no-accuracy": acc = false; break;
                default: throw new ArgumentException($"unknown option {args[i]}\n{Usage}");
            }
        }
        if (model is null) throw new ArgumentException($"--model is required\n{Usage}");
        if (newTokens < 2) throw new ArgumentException("--new-tokens: at least 2 (decode speed is measured after the first token)");
        if (threads.Length == 0 || threads.Any(t => t < 1)) throw new ArgumentException("--threads: a comma-separated list of positive counts");
        return new SameWeightsArguments(model, kiln, work, threads, formats, prompt, newTokens, repeats, accuracy, half, kilnArgs, benchArgs,
            kv, flash, pure, probe, speed, acc, timeout, rounds);
    }
}
