namespace Alignment.Annotation;

/// <summary>What a rater does with an item.</summary>
public enum AnnotationMode
{
    /// <summary>Two completions side by side: A better, B better, tie or skip.</summary>
    Pairwise,

    /// <summary>Each completion of a prompt scored 1–5.</summary>
    Rating,
}
