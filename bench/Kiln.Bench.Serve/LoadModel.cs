using System.Diagnostics;
using System.Text.Json.Nodes;

namespace Kiln.Bench.Serve;

/// <summary>
/// The load test's default model: `kiln testmodel`'s random Llama of 1.09 GB in fp32 (6 layers, hidden 2048,
/// 16 heads, 4 KV heads, intermediate 5632) with the default model's 512-token vocabulary, so that the
/// default model's tokenizer files can go beside it (the server needs a tokenizer to send text).
/// </summary>
public static class LoadModel
{
    public static string Create(string kiln, string work, Action<string> progress)
    {
        var folder = Path.Combine(work, "llama-1g-v512");
        if (File.Exists(Path.Combine(folder, "tokenizer.json"))) return folder;
        progress($"writing the 1 GB test model to {folder}");
        var start = kiln.EndsWith(".dll", StringComparison.Ordinal) ? new ProcessStartInfo("dotnet") { ArgumentList = { kiln } } : new ProcessStartInfo(kiln);
        foreach (var argument in (string[])["testmodel", "--family", "llama", "--layers", "6", "--hidden", "2048", "--heads", "16", "--kv-heads", "4",
            "--intermediate", "5632", "--vocab", "512", "--out", folder])
            start.ArgumentList.Add(argument);
        using var process = Process.Start(start)!;
        process.WaitForExit();
        if (process.ExitCode != 0) throw new InvalidOperationException($"kiln testmodel failed ({process.ExitCode})");
        var tokenizer = Path.Combine(BenchEnvironment.RepoRoot(), "models", "stories260K");
        foreach (var file in new[] { "tokenizer.json", "tokenizer_config.json" }) File.Copy(Path.Combine(tokenizer, file), Path.Combine(folder, file));
        return folder;
    }

    public static int VocabSize(string model) => JsonNode.Parse(File.ReadAllText(Path.Combine(model, "config.json")))!["vocab_size"]!.GetValue<int>();
}
