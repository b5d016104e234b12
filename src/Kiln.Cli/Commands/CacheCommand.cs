using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Kiln.Cache;
using Kiln.Checkpoints;
using Kiln.Transforms;
using Spectre.Console;

namespace Kiln.Cli.Commands;

/// <summary>
/// `kiln cache list | show KEY | explain | verify | prune | clear | stats`: looks into the pipeline
/// snapshot cache. Tables for people, `--json` for machines; every subcommand takes --cache-dir and
/// --cache-trust-shared-root.
/// </summary>
public static class CacheCommand
{
    /// <summary>Exit code of `kiln cache verify` when an entry is corrupt or unreadable.</summary>
    public const int VerifyFailed = 1;

    public static Command Create()
    {
        var command = new Command("cache", "Inspect and maintain the pipeline snapshot cache.");
        command.Subcommands.Add(List());
        command.Subcommands.Add(Show());
        command.Subcommands.Add(Explain());
        command.Subcommands.Add(Verify());
        command.Subcommands.Add(Prune());
        command.Subcommands.Add(Clear());
        command.Subcommands.Add(Stats());
        return command;
    }

    private static Command List()
    {
        var json = CommonOptions.Json("the entries and totals");
        var command = Subcommand("list", "List every entry: key, snapshot point, architecture, size, created, last used, compile time it saves.", json);
        command.SetKilnAction(p =>
        {
            var entries = Open(p).Entries().Select(e => new CacheListEntry(e.Key, e.Manifest?.Point, e.Manifest is { } m ? KeyExplanation.ArchitectureOf(m.Components) : null,
                e.Bytes, e.WeightsBytes, e.Manifest?.Created, e.LastUse, e.Manifest?.CompileMs, e.Manifest is null ? "unreadable manifest" : null)).ToArray();
            var output = new CacheListOutput(entries, entries.Length, entries.Sum(e => e.Bytes), Math.Round(entries.Sum(e => e.CompileMs ?? 0), 3));
            if (p.GetValue(json)) return Json(output, CliJsonContext.Default.CacheListOutput);

            var table = new Table().AddColumn(new TableColumn("key").NoWrap()).AddColumns("point", "after", "stage", "architecture", "size", "weights", "created", "last used", "compile ms");
            foreach (var e in entries)
            {
                table.AddRow(Cells(e.Key[..Math.Min(12, e.Key.Length)], e.Point?.Index.ToString(CultureInfo.InvariantCulture) ?? "?", e.Point?.After ?? e.Problem ?? "?",
                    e.Point?.Stage ?? "?", e.Architecture ?? "?", Size(e.Bytes), e.WeightsBytes > 0 ? Size(e.WeightsBytes) : "-", Time(e.Created), Time(e.LastUsed), e.CompileMs is { } ms ? $"{ms:F0}" : "?"));
            }
            AnsiConsole.Write(table);
            AnsiConsole.WriteLine($"{output.Count} entries, {Size(output.Bytes)}, {output.CompileMs:F0} ms of compile time saved per use");
            return 0;
        });
        return command;
    }

    private static Command Show()
    {
        var key = new Argument<string>("KEY") { Description = "The entry's key or a unique prefix of it." };
        var json = CommonOptions.Json("the manifest");
        var command = Subcommand("show", "Show an entry's manifest: schema versions, point, key components, files, tool version, world size.", json);
        command.Arguments.Add(key);
        command.SetKilnAction(p =>
        {
            var entry = Open(p).Find(p.GetValue(key)!);
            var manifest = entry.Manifest ?? throw new KilnException($"entry {entry.Key}: its manifest is unreadable (see `kiln cache verify`)");
            var weights = entry.Weights.Select(w => new CacheShowWeights(w.Key, w.Bytes, w.Manifest)).ToArray();
            if (p.GetValue(json)) return Json(new CacheShowOutput(entry.Key, entry.Bytes, entry.LastUse, manifest, weights), CliJsonContext.Default.CacheShowOutput);

            var fields = new Table().AddColumns("field", "value");
            fields.AddRow(Cells("key", manifest.Key));
            fields.AddRow(Cells("schema", $"snapshot={manifest.SchemaVersion}, ir={manifest.IrSchemaVersion}, recipe={manifest.RecipeSchemaVersion}"));
            fields.AddRow(Cells("point", manifest.Point.Describe()));
            fields.AddRow(Cells("tool version", manifest.ToolVersion));
            fields.AddRow(Cells("world size", $"{manifest.WorldSize}"));
            fields.AddRow(Cells("created", Time(manifest.Created)));
            fields.AddRow(Cells("last used", Time(entry.LastUse)));
            fields.AddRow(Cells("compile ms", $"{manifest.CompileMs:F1}"));
            fields.AddRow(Cells("size", Size(entry.Bytes)));
            AnsiConsole.Write(fields);
            var components = new Table().AddColumns("component", "value");
            foreach (var c in manifest.Components) components.AddRow(Cells(c.Name, c.Value));
            AnsiConsole.Write(components);
            var files = new Table().AddColumns("file", "bytes", "sha256");
            foreach (var f in manifest.Files) files.AddRow(Cells(f.Path, $"{f.Bytes:N0}", f.Sha256));
            AnsiConsole.Write(files);
            foreach (var w in weights)
            {
                AnsiConsole.WriteLine($"weights {w.Key[..16]} ({Size(w.Bytes)}){(w.Manifest is null ? ": unreadable manifest" : $", computed in {w.Manifest.ComputeMs:F0} ms")}");
                if (w.Manifest is null) continue;
                var tier = new Table().AddColumns("file", "bytes", "xxh3-128");
                foreach (var c in w.Manifest.Content) tier.AddRow(Cells($"checkpoint {c.File}", "", c.Xxh3));
                foreach (var f in w.Manifest.Files) tier.AddRow(Cells(f.Path, $"{f.Bytes:N0}", f.Xxh3));
                AnsiConsole.Write(tier);
            }
            return 0;
        });
        return command;
    }

    private static Command Explain()
    {
        var model = CommonOptions.Model(required: false);
        var json = CommonOptions.Json("the explanation");
        var command = Subcommand("explain", "Compute the keys this model and pipeline would use; for each snapshot point say hit, or which key components differ from the nearest entry of the same model.", json);
        foreach (var option in new Option[] { model, CommonOptions.Pipeline, CommonOptions.Set, CacheOptions.Fingerprint }) command.Options.Add(option);
        command.SetKilnAction(p =>
        {
            var inspector = Open(p);
            var pipeline = PipelineConfig.Load(p.GetValue(CommonOptions.Pipeline), p.GetValue(CommonOptions.Set));
            using var checkpoint = Checkpoint.Open(p.GetValue(model)!);
            var fingerprint = p.GetValue(CacheOptions.Fingerprint) == "content" ? FingerprintMode.Content : FingerprintMode.Headers;
            var explanation = inspector.Explain(pipeline, SnapshotKeys.ForPoints(checkpoint, pipeline, fingerprint), checkpoint);
            if (p.GetValue(json)) return Json(explanation, CliJsonContext.Default.KeyExplanation);

            if (explanation.Points.Count == 0) Console.WriteLine("the pipeline has no enabled pipeline_cache point: nothing is cached");
            else Console.WriteLine($"model {explanation.Architecture}: {explanation.EntriesForArchitecture} entries for this architecture in {inspector.Settings.Root}");
            foreach (var point in explanation.Points)
            {
                var head = $"{point.Point.Describe()}, key {point.Key[..16]}:";
                if (point.Hit) { Console.WriteLine(point.Weights is null ? $"{head} hit" : $"{head} hit; weights {point.Weights}"); continue; }
                Console.WriteLine(point.NearestKey is null ? $"{head} miss" :
                    $"{head} miss; the nearest entry, {point.NearestKey[..Math.Min(16, point.NearestKey.Length)]} at point {point.NearestPoint!.Index}, differs in {point.Differences.Count} component(s):");
                foreach (var difference in point.Differences) Console.WriteLine($"  {difference.Summary}");
                if (point.Note is { } note) Console.WriteLine($"  {note}");
            }
            return 0;
        });
        return command;
    }

    private static Command Verify()
    {
        var quarantine = new Option<bool>("--quarantine") { Description = "Move corrupt entries to <root>/quarantine (default: only report them)." };
        var json = CommonOptions.Json("each entry's status");
        var command = Subcommand("verify", "Re-check every entry as a restore would (manifest, schema, file sizes and SHA-256, graph); exit 1 if any is corrupt.", json);
        command.Options.Add(quarantine);
        command.SetKilnAction(p =>
        {
            var checks = Open(p).Verify(p.GetValue(quarantine)).ToArray();
            var output = new CacheVerifyOutput(checks, checks.Count(c => c.Status == EntryCheck.Ok), checks.Count(c => c.Status != EntryCheck.Ok));
            if (p.GetValue(json)) Json(output, CliJsonContext.Default.CacheVerifyOutput);
            else
            {
                foreach (var c in checks)
                {
                    Console.WriteLine($"{c.Key[..Math.Min(16, c.Key.Length)]} {c.Status}{(c.Problem is null ? "" : $": {c.Problem}")}{(c.Quarantined ? " (quarantined)" : "")}");
                }
                Console.WriteLine($"{output.Ok} ok, {output.Failed} corrupt or unreadable");
            }
            return output.Failed == 0 ? 0 : VerifyFailed;
        });
        return command;
    }

    private static Command Prune()
    {
        var json = CommonOptions.Json("the removed entries");
        var maxSize = new Option<string?>("--max-size", "--cache-max-size") { Description = "The budget (e.g. 500M, 10G; default 10G)." };
        var command = Subcommand("prune", "Remove least recently used entries until the cache fits its budget.", json);
        command.Options.Add(maxSize);
        command.SetKilnAction(p =>
        {
            var maxBytes = p.GetValue(maxSize) is { } size ? CacheOptions.ParseSize(size) : CacheSettings.DefaultMaxBytes;
            var inspector = Open(p);
            var removed = inspector.Prune(maxBytes).ToArray();
            var remaining = inspector.Entries();
            var output = new CachePruneOutput(maxBytes, removed, removed.Sum(r => r.Bytes), remaining.Count, remaining.Sum(e => e.Bytes));
            if (p.GetValue(json)) return Json(output, CliJsonContext.Default.CachePruneOutput);
            foreach (var r in removed) Console.WriteLine($"removed {r.Key[..Math.Min(16, r.Key.Length)]} ({Size(r.Bytes)})");
            Console.WriteLine($"freed {Size(output.BytesFreed)}; {output.RemainingEntries} entries, {Size(output.RemainingBytes)} of {Size(maxBytes)} remain");
            return 0;
        });
        return command;
    }

    private static Command Clear()
    {
        var json = CommonOptions.Json("what was removed");
        var command = Subcommand("clear", "Remove every entry, the quarantine, staging leftovers and locks no process holds (statistics stay).", json);
        command.SetKilnAction(p =>
        {
            var result = Open(p).Clear();
            if (p.GetValue(json)) return Json(result, CliJsonContext.Default.ClearResult);
            Console.WriteLine($"removed {result.Entries} entries ({Size(result.Bytes)}), {result.Quarantined} quarantined, " +
                $"{result.StagingLeftovers} staging leftovers, {result.Locks} locks");
            return 0;
        });
        return command;
    }

    private static Command Stats()
    {
        var json = CommonOptions.Json("the counts");
        var command = Subcommand("stats", "Persisted counts of hits and misses by reason, quarantined entries and time saved; current entries and size.", json);
        command.SetKilnAction(p =>
        {
            var inspector = Open(p);
            var stats = inspector.Stats();
            var entries = inspector.Entries();
            var weightsMisses = stats.WeightsMisses ?? [];
            var output = new CacheStatsOutput(stats.Hits, stats.Misses, stats.Misses.Values.Sum(), stats.Quarantined, Math.Round(stats.SavedMs, 3),
                entries.Count, entries.Sum(e => e.Bytes), stats.WeightsHits, weightsMisses, weightsMisses.Values.Sum(), entries.Sum(e => e.WeightsBytes));
            if (p.GetValue(json)) return Json(output, CliJsonContext.Default.CacheStatsOutput);
            var table = new Table().AddColumns("count", "value");
            table.AddRow(Cells("hits", $"{output.Hits}"));
            table.AddRow(Cells("misses", $"{output.MissCount}"));
            foreach (var (reason, count) in output.Misses) table.AddRow(Cells($"  {reason}", $"{count}"));
            table.AddRow(Cells("weights hits", $"{output.WeightsHits}"));
            table.AddRow(Cells("weights misses", $"{output.WeightsMissCount}"));
            foreach (var (reason, count) in output.WeightsMisses) table.AddRow(Cells($"  {reason}", $"{count}"));
            table.AddRow(Cells("quarantined", $"{output.Quarantined}"));
            table.AddRow(Cells("time saved", $"{output.SavedMs / 1000:F1} s"));
            table.AddRow(Cells("entries", $"{output.Entries}"));
            table.AddRow(Cells("size", Size(output.Bytes)));
            table.AddRow(Cells("  of which weights", Size(output.WeightsBytes)));
            AnsiConsole.Write(table);
            return 0;
        });
        return command;
    }

    private static Command Subcommand(string name, string description, Option<bool> json) =>
        new(name, description) { CacheOptions.Directory, CacheOptions.TrustSharedRoot, json };

    private static CacheInspector Open(ParseResult p) => CacheInspector.Open(
        new CacheSettings(CacheOptions.Root(p), TrustSharedRoot: p.GetValue(CacheOptions.TrustSharedRoot)));

    private static int Json<T>(T value, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type)
    {
        Console.WriteLine(JsonSerializer.Serialize(value, type));
        return 0;
    }

    private static string[] Cells(params string[] values) => values.Select(Markup.Escape).ToArray();

    private static string Time(DateTimeOffset? time) => time?.ToLocalTime().ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture) ?? "?";

    private static string Size(long bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        var value = (double)bytes;
        var unit = 0;
        for (; value >= 1024 && unit < units.Length - 1; unit++) value /= 1024;
        return unit == 0 ? $"{bytes} B" : string.Create(CultureInfo.InvariantCulture, $"{value:F1} {units[unit]}");
    }
}

public sealed record CacheListOutput(CacheListEntry[] Entries, int Count, long Bytes, double CompileMs);

/// <summary>One entry of `kiln cache list --json`; the manifest's fields are null when it is unreadable (<see cref="Problem"/> says so).</summary>
public sealed record CacheListEntry(string Key, PointInfo? Point, string? Architecture, long Bytes, long WeightsBytes, DateTimeOffset? Created, DateTime LastUsed,
    double? CompileMs, string? Problem);

public sealed record CacheShowOutput(string Key, long Bytes, DateTime LastUsed, SnapshotManifest Manifest, CacheShowWeights[] Weights);

/// <summary>A weights folder of the entry shown: its key, size and manifest (null when unreadable).</summary>
public sealed record CacheShowWeights(string Key, long Bytes, WeightsManifest? Manifest);

public sealed record CacheVerifyOutput(EntryCheck[] Entries, int Ok, int Failed);

public sealed record CachePruneOutput(long MaxBytes, RemovedEntry[] Removed, long BytesFreed, int RemainingEntries, long RemainingBytes);

public sealed record CacheStatsOutput(long Hits, SortedDictionary<string, long> Misses, long MissCount, long Quarantined, double SavedMs, int Entries, long Bytes,
    long WeightsHits, SortedDictionary<string, long> WeightsMisses, long WeightsMissCount, long WeightsBytes);
