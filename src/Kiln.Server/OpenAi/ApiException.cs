namespace Kiln.Server.OpenAi;

/// <summary>
/// A request the server refuses, answered in OpenAI's error shape:
/// {"error": {"message", "type", "param", "code"}} with the HTTP status (400, 401, 404, 413, 429, 503).
/// </summary>
public sealed class ApiException(int status, string message, string type = ApiException.InvalidRequest, string? param = null, string? code = null)
    : Exception(message)
{
    public const string InvalidRequest = "invalid_request_error";

    public int Status { get; } = status;
    public string Type { get; } = type;
    public string? Param { get; } = param;
    public string? Code { get; } = code;

    public static ApiException BadRequest(string message, string? param = null, string? code = null) => new(400, message, InvalidRequest, param, code);

    public ApiErrorBody Body => new(new ApiErrorDetail(Message, Type, Param, Code));
}
