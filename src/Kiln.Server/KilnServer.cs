using System.Diagnostics;
using Kiln.Server.OpenAi;
using Kiln.Serving;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Kiln.Server;

/// <summary>
/// `kiln serve`: an OpenAI-compatible HTTP server (ASP.NET Core's Kestrel, minimal routes, source-generated
/// JSON: it runs in the Native AOT kiln). It listens at once and answers /health with 503 while the model
/// loads, then 200; on SIGTERM or Ctrl+C it stops taking requests, lets running ones finish (up to the
/// shutdown timeout), and exits.
/// </summary>
public static class KilnServer
{
    /// <summary>
    /// Runs until shut down: by SIGTERM or Ctrl+C, or by <paramref name="stop"/> (for an application that
    /// hosts the server in its own process). <paramref name="load"/> loads the model (after the server listens);
    /// <paramref name="log"/> hears one line when listening (the address, port 0 resolved) and one when ready.
    /// </summary>
    public static async Task RunAsync(ServerOptions options, EngineOptions engineOptions, Func<ServedModel> load, TextWriter log,
        CancellationToken stop = default)
    {
        engineOptions.Validate();
        var state = new ServerState(options);
        var apiKey = options.ApiKey is { } key ? new ApiKeyCheck(key) : null;
        var started = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.UseUrls($"http://{(options.Host.Contains(':') ? $"[{options.Host}]" : options.Host)}:{options.Port}");
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestBodySize = options.MaxBodyBytes;
        });
        builder.Services.Configure<HostOptions>(host => host.ShutdownTimeout = options.ShutdownTimeout ?? ServerOptions.DefaultShutdownTimeout);
        await using var app = builder.Build();

        app.MapGet("/health", context => context.Response.WriteAsJsonAsync(Health(context, state), OpenAiJsonContext.Default.HealthStatus));
        app.MapGet("/metrics", async context =>
        {
            context.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
            await state.Metrics.WriteAsync(context.Response.Body, context.RequestAborted);
        });
        app.MapGet("/v1/models", Api(state, apiKey, context => ModelsEndpoint.ListAsync(context, state, started)));
        app.MapGet("/v1/models/{id}", Api(state, apiKey, context => ModelsEndpoint.GetAsync(context, state, started)));
        app.MapPost("/v1/completions", Api(state, apiKey, context => CompletionsEndpoint.HandleAsync(context, state)));
        app.MapPost("/v1/chat/completions", Api(state, apiKey, context => ChatCompletionsEndpoint.HandleAsync(context, state)));
        app.MapFallback(Api(state, apiKey, context =>
            throw new ApiException(404, $"Unknown request URL: {context.Request.Method} {context.Request.Path}.", code: "unknown_url")));
        app.Lifetime.ApplicationStopping.Register(state.Stopping);

        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        log.WriteLine($"kiln: listening on {address} (loading the model; /health answers 503 until it is ready)");

        var clock = Stopwatch.StartNew();
        ServedModel? served = null;
        ServingEngine? engine = null;
        try
        {
            served = load();
            if (served.ChatTemplateProblem is { } problem) log.WriteLine($"kiln: note: no chat template, so /v1/chat/completions answers 400: {problem}");
            engine = new ServingEngine(served.Model, engineOptions);
            state.Ready(served, engine, clock.Elapsed.TotalMilliseconds);
            log.WriteLine($"kiln: serving {served.Id} on {address}: {engine.Slots} slots of {engine.Context} tokens " +
                $"(KV cache {engine.CacheBytes / (1024.0 * 1024):F1} MiB at most), ready in {clock.Elapsed.TotalMilliseconds:F0} ms");
            await app.WaitForShutdownAsync(stop);
        }
        finally
        {
            state.Stopping();
            await app.StopAsync();
            engine?.Dispose();
            served?.Dispose();
        }
    }

    private static HealthStatus Health(HttpContext context, ServerState state)
    {
        context.Response.StatusCode = state.IsReady ? 200 : 503;
        return new HealthStatus(state.IsReady ? "ok" : state.IsStopping ? "stopping" : "loading");
    }

    // A /v1/ route: the API key, then the handler; a refusal (or a bug) becomes an OpenAI-shaped error.
    private static RequestDelegate Api(ServerState state, ApiKeyCheck? apiKey, RequestDelegate handler) => async context =>
    {
        try
        {
            apiKey?.Check(context.Request);
            await handler(context);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away; its sequence was cancelled with the request.
        }
        catch (Exception e)
        {
            var error = e as ApiException ?? new ApiException(500, $"Internal error ({e.GetType().Name}): {e.Message}", "server_error");
            if (context.Response.HasStarted)
            {
                // A stream already sent its status: end it, so that the client sees it did not complete.
                context.Abort();
                return;
            }
            context.Response.StatusCode = error.Status;
            if (error.Status == 429) context.Response.Headers.RetryAfter = "1";
            await context.Response.WriteAsJsonAsync(error.Body, OpenAiJsonContext.Default.ApiErrorBody);
        }
    };
}
