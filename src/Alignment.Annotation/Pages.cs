using System.Reflection;

namespace Alignment.Annotation;

/// <summary>The rater page and the dashboard, shipped in the assembly. They build every piece of data into the page with
/// <c>textContent</c>, never as HTML, so a completion holding markup shows as text.</summary>
internal static class Pages
{
    static readonly string RaterPage = Load("rater.html"), DashboardPage = Load("dashboard.html");

    public static string Rater(AnnotationMode mode) => RaterPage.Replace("__MODE__", mode.ToString().ToLowerInvariant(), StringComparison.Ordinal);

    public static string Dashboard => DashboardPage;

    static string Load(string name)
    {
        using Stream stream = Assembly.GetExecutingAssembly().GetManifestResourceStream($"Alignment.Annotation.Pages.{name}")
            ?? throw new InvalidOperationException($"The page {name} is missing from the assembly.");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
