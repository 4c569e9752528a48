from django.urls import path

from checks import views

urlpatterns = [
    path("check/<str:number>", views.check, name="check"),
]
