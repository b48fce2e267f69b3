using Microsoft.AspNetCore.Http;

namespace NativeReasoner.Server;

/// <summary>The chat page served at <c>/</c>: one self-contained HTML file embedded in the assembly.</summary>
internal static class ChatPage
{
    private static readonly Lazy<byte[]> Html = new(() =>
    {
        using var stream = typeof(ChatPage).Assembly.GetManifestResourceStream("NativeReasoner.Server.index.html")
                           ?? throw new InvalidOperationException("the chat page resource is missing from the build");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    });

    public static async Task WriteAsync(HttpContext http)
    {
        http.Response.ContentType = "text/html; charset=utf-8";
        http.Response.Headers.CacheControl = "no-cache";
        await http.Response.Body.WriteAsync(Html.Value, http.RequestAborted);
    }
}
