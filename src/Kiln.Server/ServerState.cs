using Kiln.Server.OpenAi;
using Kiln.Serving;

namespace Kiln.Server;

/// <summary>
/// What the endpoints share: the metrics from the start, the model and its engine once loaded (until then
/// every model route answers 503, as /health does), and whether the server is shutting down.
/// </summary>
public sealed class ServerState(ServerOptions options)
{
    private ServedModel? model;
    private volatile ServingEngine? engine;
    private volatile bool stopping;

    public ServerOptions Options { get; } = options;

    public ServerMetrics Metrics { get; } = new();

    public bool IsReady => engine is not null && !IsStopping;

    public bool IsStopping => stopping;

    public ServedModel Model => model ?? throw NotReady();

    public ServingEngine Engine => engine ?? throw NotReady();

    public void Ready(ServedModel servedModel, ServingEngine servingEngine, double loadMs)
    {
        model = servedModel;
        engine = servingEngine;
        Metrics.Ready(servingEngine, servedModel.Cache?.Status == "hit", loadMs);
    }

    /// <summary>Shutdown began: no new generation is accepted; running ones finish.</summary>
    public void Stopping()
    {
        stopping = true;
        engine?.StopAccepting();
    }

    /// <summary>The model a request names must be the one served (404 otherwise, as OpenAI answers).</summary>
    public void CheckModel(string? name)
    {
        if (name is null) throw ApiException.BadRequest("You must provide a model parameter.", "model", "missing_model");
        if (name != Model.Id)
            throw new ApiException(404, $"The model `{name}` does not exist. This server serves `{Model.Id}`.", param: "model", code: "model_not_found");
    }

    private ApiException NotReady() => IsStopping
        ? new ApiException(503, "The server is shutting down.", "server_error", code: "shutting_down")
        : new ApiException(503, "The model is still loading; retry when /health answers 200.", "server_error", code: "model_loading");
}
