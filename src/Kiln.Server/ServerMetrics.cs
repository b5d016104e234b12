using Kiln.Serving;
using Prometheus;

namespace Kiln.Server;

/// <summary>
/// The server's Prometheus metrics (prometheus-net, in a registry of its own): requests running and
/// waiting, KV slots in use, prompt and generated tokens, time to first token, inter-token latency,
/// finished requests by reason, and how the model was loaded (snapshot-cache hit, load time), plus the
/// process's own (resident memory, CPU, GC).
/// </summary>
public sealed class ServerMetrics
{
    private readonly CollectorRegistry registry = Metrics.NewCustomRegistry();
    private readonly Gauge running, waiting, slotsInUse, slots, cacheHit, loadSeconds, ready;
    private ServingEngine? engine;

    public ServerMetrics()
    {
        var factory = Metrics.WithCustomRegistry(registry);
        running = factory.CreateGauge("kiln_requests_running", "Requests holding a KV slot (prefilling or decoding).");
        waiting = factory.CreateGauge("kiln_requests_waiting", "Requests waiting for a free KV slot.");
        slotsInUse = factory.CreateGauge("kiln_kv_slots_in_use", "KV cache slots holding a sequence.");
        slots = factory.CreateGauge("kiln_kv_slots", "KV cache slots (--slots).");
        PromptTokens = factory.CreateCounter("kiln_prompt_tokens_total", "Prompt tokens of the requests admitted.");
        GeneratedTokens = factory.CreateCounter("kiln_generation_tokens_total", "Tokens generated.");
        TimeToFirstToken = factory.CreateHistogram("kiln_time_to_first_token_seconds", "From a request's arrival to its first generated token.",
            new HistogramConfiguration { Buckets = [0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48] });
        InterTokenLatency = factory.CreateHistogram("kiln_inter_token_latency_seconds", "Between two generated tokens of a request.",
            new HistogramConfiguration { Buckets = [0.001, 0.002, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56] });
        Finished = factory.CreateCounter("kiln_requests_finished_total", "Requests that ended, by finish reason (stop, length, cancelled).",
            new CounterConfiguration { LabelNames = ["finish_reason"] });
        cacheHit = factory.CreateGauge("kiln_snapshot_cache_hit", "1 when the model's graph was restored from the pipeline snapshot cache at start, else 0.");
        loadSeconds = factory.CreateGauge("kiln_model_load_seconds", "Time to load the model at start (compile or restore, weights, session).");
        ready = factory.CreateGauge("kiln_ready", "1 once the model is loaded and requests are served.");
        DotNetStats.Register(registry);
        registry.AddBeforeCollectCallback(() =>
        {
            if (engine is not { } e) return;
            running.Set(e.BusySlots);
            slotsInUse.Set(e.BusySlots);
            waiting.Set(e.Waiting);
        });
    }

    public Counter PromptTokens { get; }
    public Counter GeneratedTokens { get; }
    public Histogram TimeToFirstToken { get; }
    public Histogram InterTokenLatency { get; }
    public Counter Finished { get; }

    /// <summary>The model is loaded: from now on the engine's gauges are read at each scrape.</summary>
    public void Ready(ServingEngine servingEngine, bool snapshotCacheHit, double loadMs)
    {
        engine = servingEngine;
        slots.Set(servingEngine.Slots);
        cacheHit.Set(snapshotCacheHit ? 1 : 0);
        loadSeconds.Set(loadMs / 1000);
        ready.Set(1);
    }

    /// <summary>Writes every metric in Prometheus' text format.</summary>
    public Task WriteAsync(Stream output, CancellationToken cancel) => registry.CollectAndExportAsTextAsync(output, cancel);
}
