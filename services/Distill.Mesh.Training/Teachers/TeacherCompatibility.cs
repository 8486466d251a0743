using Distill.Mesh.Modeling.Tokenization;

namespace Distill.Mesh.Training.Teachers;

/// <summary>
/// The check before step 1: teacher and student must share the tokenizer (same ids mean the same
/// strings). Their output heads may differ in size when one is padded: the ids both have are
/// kept, which is correct because ids below the smaller size align.
/// </summary>
public static class TeacherCompatibility
{
    /// <returns>The number of leading ids both models score (the vocabulary the loss uses).</returns>
    public static int Check(TeacherDescription teacher, TextTokenizer studentTokenizer, int studentVocabSize)
    {
        if (teacher.TokenizerHash != studentTokenizer.Hash)
            throw new IncompatibleTeacherException(
                $"teacher and student tokenizers differ (teacher {teacher.TokenizerHash[..12]}…, student {studentTokenizer.Hash[..12]}…): " +
                "logit distillation needs the same token ids; use a student from the teacher's family, or sequence-level KD");
        var shared = Math.Min(teacher.VocabSize, studentVocabSize);
        var used = Math.Max(teacher.TokenizerVocabSize, studentTokenizer.VocabularySize);
        if (used > shared)
            throw new IncompatibleTeacherException(
                $"the tokenizer uses {used} ids but the {(teacher.VocabSize < studentVocabSize ? "teacher" : "student")} output head has only {shared} rows");
        return shared;
    }
}

/// <summary>A teacher cannot distil into this student; the message says why.</summary>
public sealed class IncompatibleTeacherException(string message) : Exception(message);
