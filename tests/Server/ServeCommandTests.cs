using NativeReasoner.Cli;
using Xunit;

namespace NativeReasoner.Tests.Server;

/// <summary><c>nr serve</c> refuses what it cannot serve with a message, not a stack trace.</summary>
public class ServeCommandTests
{
    [Fact]
    public void Serve_FailsClearly_OnAMissingModel_OrABadHost()
    {
        var error = new StringWriter();
        var saved = Console.Error;
        Console.SetError(error);
        try
        {
            Assert.Equal(1, Program.Main(["serve", "--model", "/nonexistent/model-dir", "--port", "0"]));
            Assert.Contains("nr serve:", error.ToString());
            Assert.Contains("/nonexistent/model-dir", error.ToString());
            Assert.DoesNotContain("   at ", error.ToString());
        }
        finally { Console.SetError(saved); }
    }
}
