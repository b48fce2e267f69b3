using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace NativeReasoner.Server;

/// <summary>
/// A ready web application serving one chat client on one address — what <c>nr serve</c> runs and the tests start
/// on a free port. Applications with their own host call <see cref="OpenAIEndpoints.MapNativeReasonerOpenAI"/>.
/// </summary>
public static class NativeReasonerServer
{
    /// <summary>
    /// Kestrel on <paramref name="host"/>:<paramref name="port"/> (port 0 = a free one; see <see cref="BoundUrl"/>)
    /// with the endpoints over <paramref name="client"/>. The caller keeps owning the client.
    /// </summary>
    public static WebApplication Create(IChatClient client, NativeReasonerServerOptions? options = null,
        string host = "127.0.0.1", int port = 8000, LogLevel logLevel = LogLevel.Warning)
    {
        ArgumentNullException.ThrowIfNull(client);
        if (port is < 0 or > 65535) throw new ArgumentException($"port must be in [0, 65535], got {port}");
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.SetMinimumLevel(logLevel);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            if (host == "localhost") kestrel.ListenLocalhost(port);
            else if (IPAddress.TryParse(host, out var address)) kestrel.Listen(address, port);
            else throw new ArgumentException($"host must be an IP address or 'localhost', got '{host}'");
        });
        builder.Services.AddSingleton(client);
        var app = builder.Build();
        app.MapNativeReasonerOpenAI(options);
        return app;
    }

    /// <summary>The first address a started application listens on (with the port it was given).</summary>
    public static Uri BoundUrl(WebApplication app)
    {
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses;
        var first = addresses?.FirstOrDefault()
                    ?? throw new InvalidOperationException("the application is not listening yet (call StartAsync)");
        return new Uri(first.Replace("[::]", "127.0.0.1").Replace("0.0.0.0", "127.0.0.1"));
    }
}
