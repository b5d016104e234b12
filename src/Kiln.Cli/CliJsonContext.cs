using System.Text.Json.Serialization;
using Kiln.Cli.Commands;

namespace Kiln.Cli;

/// <summary>Source-generated JSON for the CLI's --json outputs (a stable interface: snake_case names).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, WriteIndented = false)]
[JsonSerializable(typeof(GenerateOutput))]
[JsonSerializable(typeof(LogitsOutput))]
[JsonSerializable(typeof(InspectOutput))]
[JsonSerializable(typeof(CompileOutput))]
[JsonSerializable(typeof(Kiln.Benchmarks.BenchmarkResult))]
[JsonSerializable(typeof(CacheListOutput))]
[JsonSerializable(typeof(CacheShowOutput))]
[JsonSerializable(typeof(Kiln.Cache.KeyExplanation))]
[JsonSerializable(typeof(CacheVerifyOutput))]
[JsonSerializable(typeof(CachePruneOutput))]
[JsonSerializable(typeof(Kiln.Cache.ClearResult))]
[JsonSerializable(typeof(CacheStatsOutput))]
public sealed partial class CliJsonContext : JsonSerializerContext;
