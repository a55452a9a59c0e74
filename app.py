from kamusm import create_app

app = create_app()
