using Distill.Mesh.ServiceDefaults;
using Distill.Mesh.Teacher.Extensions;

var builder = WebApplication.CreateBuilder(args);
builder.AddTeacherService();

var app = builder.Build();
app.MapDefaultEndpoints();
app.MapTeacherService();
app.Run();
