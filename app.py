from kamusm.web.factory import create_app

app = create_app()
