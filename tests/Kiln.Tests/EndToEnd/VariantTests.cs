using Kiln.Checkpoints;
using Kiln.Graph;
using Kiln.Graph.Json;
using Kiln.Models;
using Kiln.Ops;
using Kiln.Runtime;
using Kiln.Tests.Reference;

namespace Kiln.Tests.EndToEnd;

/// <summary>
/// Kiln on Llama-family configurations that have no transformers oracle, against the independent
/// <see cref="LlamaReference"/> (itself checked against the oracles in <see cref="LlamaReferenceTests"/>).
/// </summary>
public sealed class VariantTests
{
    private const double Tolerance = 1e-4;

    /// <summary>How far a switched-off feature must move the logits for the comparison above to mean something.</summary>
    private const double FeatureEffect = 1e-2;

    public static TheoryData<string> Cases => [.. VariantCase.All.Keys];

    public static TheoryData<string> CasesWithAFeature => [.. VariantCase.All.Where(c => c.Value.WithoutFeature is not null).Select(c => c.Key)];

    [Theory]
    [MemberData(nameof(Cases))]
    public void Kiln_matches_the_reference_at_every_position(string name)
    {
        var variant = VariantCase.All[name];
        using var dir = new TempDir();
        RandomCheckpointWriter.Write(variant.Options, dir.File("model"));

        float[] logits;
        using (var model = LoadedModel.Load(dir.File("model"))) logits = model.Forward(variant.Ids, variant.Positions);
        var expected = LlamaReference.Load(dir.File("model")).Forward(variant.Ids, variant.Positions);

        var (worst, at) = MaxAbsDifference(logits, expected);
        Assert.True(worst <= Tolerance, $"{name}: max |kiln - reference| = {worst:E3} at position {at / variant.Options.Vocab}");
    }

    [Theory]
    [MemberData(nameof(CasesWithAFeature))]
    public void The_feature_moves_the_logits_beyond_the_tolerance(string name)
    {
        var variant = VariantCase.All[name];
        using var dir = new TempDir();
        RandomCheckpointWriter.Write(variant.Options, dir.File("model"));

        var reference = LlamaReference.Load(dir.File("model"));
        var with = reference.Forward(variant.Ids, variant.Positions);
        var without = reference.WithConfig(variant.WithoutFeature!(reference.Config)).Forward(variant.Ids, variant.Positions);

        var (difference, _) = MaxAbsDifference(with.Select(v => (float)v).ToArray(), without);
        Assert.True(difference >= FeatureEffect, $"{name}: switching the feature off moves the logits by only {difference:E3}");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Exported_graph_round_trips_through_json(string name)
    {
        using var dir = new TempDir();
        RandomCheckpointWriter.Write(VariantCase.All[name].Options, dir.File("model"));
        using var checkpoint = Checkpoint.Open(dir.File("model"));
        var graph = ModelFactory.Export(checkpoint.Config, dir.File("model/config.json"), OpRegistry.Core);
        GraphVerifier.Verify(graph);

        var json = GraphSerializer.ToJson(graph);
        var restored = GraphSerializer.FromJson(json, OpRegistry.Core);

        Assert.Equal(GraphPrinter.Print(graph), GraphPrinter.Print(restored));
        Assert.Equal(json, GraphSerializer.ToJson(restored));
    }

    private static (double Worst, int At) MaxAbsDifference(float[] actual, double[] expected)
    {
        Assert.Equal(expected.Length, actual.Length);
        var (worst, at) = (0.0, 0);
        for (var i = 0; i < actual.Length; i++)
        {
            var difference = Math.Abs(actual[i] - expected[i]);
            if (difference > worst) (worst, at) = (difference, i);
        }
        return (worst, at);
    }
}
