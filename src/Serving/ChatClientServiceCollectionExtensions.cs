using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;

namespace NativeReasoner.Serving;

/// <summary>Registers a <see cref="NativeReasonerChatClient"/> as the container's <see cref="IChatClient"/>.</summary>
public static class ChatClientServiceCollectionExtensions
{
    /// <summary>
    /// A singleton client over <paramref name="modelDirectory"/>, loaded on first use and disposed with the container;
    /// the returned builder adds middleware (<c>.UseFunctionInvocation()</c>, logging, …) around it.
    /// </summary>
    public static ChatClientBuilder AddNativeReasonerChatClient(this IServiceCollection services,
        string modelDirectory, Action<NativeReasonerChatClientOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentException.ThrowIfNullOrWhiteSpace(modelDirectory);
        if (!Directory.Exists(modelDirectory))
            throw new DirectoryNotFoundException($"model directory '{modelDirectory}' does not exist");
        var options = new NativeReasonerChatClientOptions();
        configure?.Invoke(options);
        return services.AddChatClient(_ => NativeReasonerChatClient.Load(modelDirectory, options));
    }
}
