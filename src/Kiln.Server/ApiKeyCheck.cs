using System.Security.Cryptography;
using System.Text;
using Kiln.Server.OpenAi;

namespace Kiln.Server;

/// <summary>
/// --api-key: every /v1/ request must carry "Authorization: Bearer KEY". The key is compared in constant
/// time: both sides are hashed (SHA-256) and the hashes compared with FixedTimeEquals, so neither the
/// content nor the length of the key shows in the response time.
/// </summary>
public sealed class ApiKeyCheck(string key)
{
    private readonly byte[] expected = SHA256.HashData(Encoding.UTF8.GetBytes(key));

    /// <summary>Throws a 401 in OpenAI's shape unless the request carries the key.</summary>
    public void Check(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        const string scheme = "Bearer ";
        if (!header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase))
            throw new ApiException(401, "You didn't provide an API key. Provide it in an Authorization header: Bearer YOUR_KEY.", code: "missing_api_key");
        var given = SHA256.HashData(Encoding.UTF8.GetBytes(header[scheme.Length..].Trim()));
        if (!CryptographicOperations.FixedTimeEquals(given, expected))
            throw new ApiException(401, "Incorrect API key provided.", code: "invalid_api_key");
    }
}
