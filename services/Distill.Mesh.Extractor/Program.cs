using Distill.Mesh.Extractor.Extensions;
using Distill.Mesh.ServiceDefaults;

var builder = WebApplication.CreateBuilder(args);
builder.AddExtractorService();

var app = builder.Build();
app.MapDefaultEndpoints();
app.MapExtractorService();
app.Run();
