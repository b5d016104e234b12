using Kiln.Runtime;
using Kiln.Serving;
using Kiln.Tests.Runtime;

namespace Kiln.Tests.Serving;

/// <summary>
/// Continuous batching end to end: sequences submitted together or while others run, prompts prefilled by
/// chunks, give exactly what <see cref="Generator"/> gives each alone (greedy and seeded sampling); the
/// queue limit, cancellation and bad requests.
/// </summary>
public sealed class ServingEngineTests
{
    [Fact]
    public async Task Default_model_prompts_decoded_together_equal_one_generator_run_each()
    {
        using var model = LoadedModel.Load(TestPaths.DefaultModel);
        var stops = StopTokens.Of(model.Checkpoint);
        var cases = DefaultModelCase.Load();
        using var engine = new ServingEngine(model, new EngineOptions(Slots: 3, PrefillChunk: 4));
        var sequences = cases.Select(c => engine.Submit(new SequenceRequest(c.InputIds, 40, new SamplingOptions(), stops))).ToList();
        for (var i = 0; i < cases.Count; i++)
        {
            var expected = new Generator(model).Generate(cases[i].InputIds, new GenerationOptions(40, new SamplingOptions(), stops));
            Assert.Equal(WithoutStop(expected, stops), await ReadAll(sequences[i]));
            Assert.Equal(expected.StopReason == "stop_token" ? FinishReason.Stop : FinishReason.Length, sequences[i].FinishReason);
            Assert.Equal(expected.NewIds.Length, sequences[i].GeneratedTokens);
        }
    }

    [Fact]
    public async Task Oracle_greedy_tokens_with_sequences_joining_and_leaving_mid_stream()
    {
        using var model = LoadedModel.Load(TestPaths.Oracle("llama_gqa"));
        var oracle = OracleCase.Load("llama_gqa");
        using var engine = new ServingEngine(model, new EngineOptions(Slots: 2, PrefillChunk: 5));
        var none = new HashSet<int>();
        // A long-running sequence first; the oracle's three join while it decodes, two slots for four sequences.
        var runner = engine.Submit(new SequenceRequest([1, 2, 3], 120, new SamplingOptions(), none));
        await runner.Tokens.ReadAsync();
        var sequences = oracle.Select(o => engine.Submit(new SequenceRequest(o.InputIds, o.GreedyNewTokens.Length, new SamplingOptions(), none))).ToList();
        for (var i = 0; i < oracle.Count; i++)
        {
            Assert.Equal(oracle[i].GreedyNewTokens, await ReadAll(sequences[i]));
            Assert.Equal(FinishReason.Length, sequences[i].FinishReason);
        }
        var expected = new Generator(model).Generate([1, 2, 3], new GenerationOptions(120, new SamplingOptions(), none)).NewIds;
        Assert.Equal(expected[1..], await ReadAll(runner));
    }

    [Fact]
    public async Task Each_sequence_samples_with_its_own_settings_and_seed()
    {
        using var model = LoadedModel.Load(TestPaths.Oracle("llama_gqa"));
        var none = new HashSet<int>();
        SamplingOptions[] settings = [new(0.8f, Seed: 7), new(1.2f, TopK: 20, Seed: 7), new(0.7f, TopP: 0.9f, Seed: 3), new()];
        using var engine = new ServingEngine(model, new EngineOptions(Slots: 4));
        var sequences = settings.Select(s => engine.Submit(new SequenceRequest([1, 50, 60], 30, s, none))).ToList();
        for (var i = 0; i < settings.Length; i++)
        {
            var expected = new Generator(model).Generate([1, 50, 60], new GenerationOptions(30, settings[i], none)).NewIds;
            Assert.Equal(expected, await ReadAll(sequences[i]));
        }
    }

    [Fact]
    public async Task A_sequence_stops_where_the_context_is_full()
    {
        using var model = LoadedModel.Load(TestPaths.Oracle("llama_gqa"));
        using var engine = new ServingEngine(model, new EngineOptions(Slots: 1), context: 12);
        var sequence = engine.Submit(new SequenceRequest([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 50, new SamplingOptions(), new HashSet<int>()));
        Assert.Equal(2, (await ReadAll(sequence)).Length);
        Assert.Equal(FinishReason.Length, sequence.FinishReason);
        Assert.Throws<KilnException>(() => engine.Submit(new SequenceRequest(Enumerable.Repeat(1, 12).ToArray(), 1, new SamplingOptions(), new HashSet<int>())));
        Assert.Throws<KilnException>(() => engine.Submit(new SequenceRequest([1, 9999], 1, new SamplingOptions(), new HashSet<int>())));
    }

    [Fact]
    public async Task A_full_queue_refuses_and_cancelling_frees_the_slot_at_once()
    {
        using var model = LoadedModel.Load(TestPaths.Oracle("llama_gqa"));
        var none = new HashSet<int>();
        using var engine = new ServingEngine(model, new EngineOptions(Slots: 1, MaxWaiting: 1, AfterStep: () => Thread.Sleep(20)));
        using var cancel = new CancellationTokenSource();
        var running = engine.Submit(new SequenceRequest([1, 2], 200, new SamplingOptions(), none), cancel.Token);
        await running.Tokens.ReadAsync();
        var waiting = engine.Submit(new SequenceRequest([1, 3], 200, new SamplingOptions(), none));
        Assert.Equal(1, engine.BusySlots);
        Assert.Equal(1, engine.Waiting);
        var busy = Assert.Throws<EngineBusyException>(() => engine.Submit(new SequenceRequest([1, 4], 5, new SamplingOptions(), none)));
        Assert.False(busy.Stopping);

        cancel.Cancel();
        await ReadAll(running);
        Assert.Equal(FinishReason.Cancelled, running.FinishReason);
        // The waiting sequence takes the freed slot at the next step.
        await waiting.Tokens.ReadAsync();
        Assert.Equal(0, engine.Waiting);
        waiting.Cancel();
        await ReadAll(waiting);
        Assert.Equal(FinishReason.Cancelled, waiting.FinishReason);
        Assert.Equal(0, engine.BusySlots);

        engine.StopAccepting();
        Assert.True(Assert.Throws<EngineBusyException>(() => engine.Submit(new SequenceRequest([1, 4], 5, new SamplingOptions(), none))).Stopping);
    }

    private static int[] WithoutStop(GenerationResult result, IReadOnlySet<int> stops) =>
        result.StopReason == "stop_token" && stops.Contains(result.NewIds[^1]) ? result.NewIds[..^1] : result.NewIds;

    private static async Task<int[]> ReadAll(EngineSequence sequence)
    {
        var ids = new List<int>();
        await foreach (var id in sequence.Tokens.ReadAllAsync()) ids.Add(id);
        return [.. ids];
    }
}
